"""The configuration loader: valid files load, every bad input is one clean error."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paymig.cli import main
from paymig.config import (
    PaymigConfig,
    load_config,
    parse_config,
    resolve_config_path,
    sample_values_in_use,
)
from paymig.config.loading import SAFE_LOADER
from paymig.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PROD = REPO / "config" / "prod.yaml"


@functools.cache
def _prod_text() -> str:
    return PROD.read_text()


def prod_data() -> dict:
    return yaml.load(_prod_text(), Loader=SAFE_LOADER)


def write(tmp_path: Path, data: object, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_prod_defaults_match_the_requirements(prod_config: PaymigConfig) -> None:
    assert prod_config.region == "us-east-2"
    assert prod_config.network.vpc_cidr == ipaddress.IPv4Network("10.0.0.0/16")
    assert prod_config.network.availability_zones == ["us-east-2a", "us-east-2b", "us-east-2c"]
    assert prod_config.migration.phases == [0, 10, 50, 100]
    assert prod_config.budget_usd == 3000
    assert prod_config.stack_name == "paymig-prod"
    assert prod_config.state_key == "paymig/prod/terraform.tfstate"


def test_staging_is_its_own_environment(
    prod_config: PaymigConfig, staging_config: PaymigConfig
) -> None:
    assert staging_config.stack_name == "paymig-staging"
    assert staging_config.state_key != prod_config.state_key
    assert not staging_config.network.vpc_cidr.overlaps(prod_config.network.vpc_cidr)


def test_subnets_are_derived_from_the_vpc_cidr(prod_config: PaymigConfig) -> None:
    cidrs = prod_config.network.subnet_cidrs()
    assert [str(c) for c in cidrs["public"]] == ["10.0.0.0/20", "10.0.16.0/20", "10.0.32.0/20"]
    assert [str(c) for c in cidrs["app"]] == ["10.0.48.0/20", "10.0.64.0/20", "10.0.80.0/20"]
    assert [str(c) for c in cidrs["data"]] == ["10.0.96.0/20", "10.0.112.0/20", "10.0.128.0/20"]


def test_sample_values_are_reported(prod_config: PaymigConfig) -> None:
    samples = sample_values_in_use(prod_config)
    assert [s.split(" = ")[0] for s in samples] == [
        "state.bucket",
        "onprem.cidr",
        "onprem.customer_gateway_ip",
        "onprem.bgp_asn",
        "dns.hosted_zone_id",
        "dns.zone_name",
        "dns.api_record_name",
        "dns.legacy_endpoint",
        "dns.legacy_addresses",
        "database.ca_bundle_path",
        "replication.source.host",
        "replication.source.ca_certificate_path",
        "observability.notification_emails",
    ]


def test_real_values_are_not_reported_as_samples() -> None:
    data = prod_data()
    data["state"]["bucket"] = "acme-tfstate"
    data["onprem"].update(cidr="172.20.0.0/16", customer_gateway_ip="52.1.2.3", bgp_asn=65010)
    data["dns"].update(
        hosted_zone_id="Z123ABC",
        zone_name="pay.acme.io",
        api_record_name="api.pay.acme.io",
        legacy_endpoint="legacy.pay.acme.io",
        legacy_addresses=["52.1.2.4"],
    )
    data["replication"]["source"].update(
        host="172.20.1.10", ca_certificate_path="config/certs/acme-onprem-ca.pem"
    )
    data["database"]["ca_bundle_path"] = "config/certs/us-east-2-bundle.pem"
    data["observability"]["notification_emails"] = ["oncall@acme.io"]
    config = PaymigConfig.model_validate(data)
    assert sample_values_in_use(config) == []


def mutate(path: str, value: object) -> dict:
    data = prod_data()
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    node[leaf] = value
    return data


BAD_CASES = [
    ("unknown top-level key", {**prod_data(), "netwrok": {}}, "netwrok: unknown key"),
    ("misspelt nested key", mutate("network.vpc_cdir", "10.0.0.0/16"), "network.vpc_cdir: unknown key"),
    ("malformed CIDR", mutate("network.vpc_cidr", "10.0.0.300/16"), "network.vpc_cidr: malformed CIDR"),
    ("host bits set", mutate("network.vpc_cidr", "10.0.0.1/16"), "network.vpc_cidr: malformed CIDR"),
    ("overlapping on-prem CIDR", {**mutate("onprem.cidr", "10.0.128.0/20"), "replication": {**prod_data()["replication"], "source": {**prod_data()["replication"]["source"], "host": "10.0.128.9"}}},
     "network.vpc_cidr: 10.0.0.0/16 overlaps the on-prem CIDR 10.0.128.0/20"),
    ("subnet plan too big", mutate("network.subnet_prefix_length", 18),
     "network.subnet_prefix_length: 9 subnets of /18 do not fit in 10.0.0.0/16 (room for 4)"),
    ("one AZ", mutate("network.availability_zones", ["us-east-2a"]),
     "network.availability_zones: at least 2 availability zones are required, got 1"),
    ("AZ of another region", mutate("network.availability_zones", ["us-east-2a", "us-west-2b"]),
     "network.availability_zones: 'us-west-2b' is not a zone of region us-east-2"),
    ("phases not increasing", mutate("migration.phases", [0, 50, 10, 100]),
     "migration.phases: phases must be strictly increasing"),
    ("phases not ending at 100", mutate("migration.phases", [0, 10, 50]),
     "migration.phases: the last phase must be 100, got 50"),
    ("phase out of range", mutate("migration.phases", [-5, 10, 100]),
     "migration.phases: every phase must be within 0-100"),
    ("zero budget", mutate("budget_usd", 0), "budget_usd: Input should be greater than 0"),
    ("negative budget", mutate("budget_usd", -10), "budget_usd: Input should be greater than 0"),
    ("record outside zone", mutate("dns.api_record_name", "api.other.org"), "dns: api_record_name"),
    ("missing section", {k: v for k, v in prod_data().items() if k != "onprem"}, "onprem: Field required"),
    ("missing database section", {k: v for k, v in prod_data().items() if k != "database"}, "database: Field required"),
    ("missing RDS bundle path", {**prod_data(), "database": {k: v for k, v in prod_data()["database"].items() if k != "ca_bundle_path"}},
     "database.ca_bundle_path: Field required"),
    ("bad retention", mutate("network.flow_log_retention_days", 100),
     "network.flow_log_retention_days: 100 is not a CloudWatch Logs retention period"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "data", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str, data: dict, expected: str
) -> None:
    path = write(tmp_path, data)
    out = tmp_path / "out"
    code = main(["synth", "--config", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, case
    assert err.count("\n") == 1, err
    assert err.startswith(f"paymig: {path}: ")
    assert expected in err
    assert "Traceback" not in err
    assert not out.exists()


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "environment: prod\ntags: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:3:1: YAML syntax error"):
        load_config(path)


@pytest.mark.parametrize(("text", "kind"), [("", "empty"), ("- a\n- b\n", "a list")])
def test_non_mapping_files_are_rejected(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(
        ConfigError, match=f"expected a mapping of settings, but the file is {kind}"
    ):
        load_config(path)


def test_missing_file_and_unknown_environment(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"no configuration for environment 'qa' \(available: "):
        resolve_config_path("qa", None)
    assert resolve_config_path("prod", None).name == "prod.yaml"


yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    section=st.sampled_from(["network", "onprem", "dns", "migration", "tags", "state", "budget_usd"]),
    key=st.sampled_from(
        ["vpc_cidr", "availability_zones", "subnet_prefix_length", "cidr", "bgp_asn",
         "customer_gateway_ip", "zone_name", "phases", "initial_phase", "owner", "bucket", "typo"]
    ),
    value=yaml_values,
)  # fmt: skip
def test_malformed_configs_always_fail_cleanly(section: str, key: str, value: object) -> None:
    """Whatever garbage lands in a field, the loader either accepts it or raises ConfigError."""
    data = prod_data()
    if isinstance(data.get(section), dict):
        data[section][key] = value
    else:
        data[section] = value
    text = yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))
    try:
        parse_config(text, Path("fuzz.yaml"))
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("fuzz.yaml: ")
        assert "\n" not in message


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_escapes_as_another_exception(text: str) -> None:
    try:
        parse_config(text, Path("fuzz.yaml"))
    except ConfigError as exc:
        assert "\n" not in str(exc)
