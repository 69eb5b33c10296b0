"""The `tags` section: tags applied to every taggable resource."""

from __future__ import annotations

from pydantic import Field

from paymig.config.base import _Model


class TagsConfig(_Model):
    """Tags applied to every taggable resource."""

    owner: str = Field(min_length=1, description="Team that owns the environment.")
    cost_center: str = Field(min_length=1, description="Cost centre the spend is booked to.")
    data_classification: str = Field(
        min_length=1, description="Data classification of the environment, e.g. `pci-cde`."
    )

    def as_dict(self) -> dict[str, str]:
        """Return the tags as AWS tag keys and values."""
        return {
            "Owner": self.owner,
            "CostCenter": self.cost_center,
            "DataClassification": self.data_classification,
        }
