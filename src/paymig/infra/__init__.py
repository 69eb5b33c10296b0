"""CDKTF constructs and the stack that composes them.

Importing this package loads the jsii runtime (10-20 s on two cores), so runtime tools
such as the validator must never import it.
"""

from __future__ import annotations

import os

# jsii prints a large end-of-life banner for Node 20 on every run; the CLI output is for
# people, so silence it before jsii loads.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
