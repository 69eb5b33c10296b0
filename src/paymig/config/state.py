"""The `state` section: where Terraform keeps its remote state."""

from __future__ import annotations

from pydantic import Field

from paymig.config.base import _Model, _operator_field


class StateConfig(_Model):
    """Remote Terraform state: an S3 bucket with one key per environment."""

    bucket: str = _operator_field(
        "S3 bucket holding Terraform state (versioning on; see docs/deployment.md for bootstrap).",
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
    )
    region: str = Field(default="us-east-2", description="Region of the state bucket.")
    key_prefix: str = Field(
        default="paymig",
        pattern=r"^[A-Za-z0-9._/-]+$",
        description="Key prefix; the state key is `<prefix>/<environment>/terraform.tfstate`.",
    )
