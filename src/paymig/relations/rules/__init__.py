"""One module per relational rule."""
