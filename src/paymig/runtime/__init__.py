"""Code that runs at migration time: plain Python, never the jsii bindings."""
