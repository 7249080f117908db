"""Settings: flags over environment over defaults, validated at the boundary."""

from __future__ import annotations

import argparse
import os
import stat
from pathlib import Path

import attrs
import pytest

from hubbub.config import (
    ConfigError,
    Settings,
    add_arguments,
    describe,
    env_var,
    flag,
    load_settings,
    spec,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_put_everything_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"HUBBUB_DATA_DIR": str(tmp_path / "d")})
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.database_url == f"sqlite:///{tmp_path / 'd' / 'hubbub.db'}"
    assert settings.media_dir.is_dir()
    assert settings.redis_url is None
    assert (settings.direct_rate_limit, settings.group_rate_limit) == (20, 30)
    assert settings.drain_timeout == 10.0
    assert settings.max_connections_per_user == 20


def test_the_generated_jwt_secret_is_kept_and_private(tmp_path: Path) -> None:
    environ = {"HUBBUB_DATA_DIR": str(tmp_path)}
    first, second = load_settings(environ=environ), load_settings(environ=environ)
    assert first.jwt_secret == second.jwt_secret
    assert len(first.jwt_secret) >= 32
    mode = stat.S_IMODE(os.stat(tmp_path / "jwt-secret").st_mode)
    assert mode == 0o600


def test_flags_win_over_environment(tmp_path: Path) -> None:
    environ = {"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_PORT": "9000", "HUBBUB_LOG_FORMAT": "json"}
    settings = load_settings({"port": "9100"}, environ)
    assert settings.port == 9100
    assert settings.log_format == "json"


@pytest.mark.parametrize(
    ("name", "value", "mentions"),
    [
        ("HUBBUB_PORT", "eighty", "HUBBUB_PORT"),
        ("HUBBUB_PORT", "70000", "port number"),
        ("HUBBUB_DIRECT_RATE_LIMIT", "0", "positive"),
        ("HUBBUB_LOG_FORMAT", "xml", "text, json"),
        ("HUBBUB_DATABASE_URL", "mysql://x/y", "sqlite:///"),
        ("HUBBUB_DATABASE_URL", "postgresql://host:notaport/db", "port"),
        ("HUBBUB_REDIS_URL", "http://x", "redis://"),
        ("HUBBUB_JWT_SECRET", "short", "32"),
        ("HUBBUB_DRAIN_TIMEOUT", "-1", "positive"),
        ("HUBBUB_MAX_CONNECTIONS_PER_USER", "0", "positive"),
    ],
)
def test_bad_values_give_one_line_naming_the_setting(
    tmp_path: Path, name: str, value: str, mentions: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(environ={"HUBBUB_DATA_DIR": str(tmp_path), name: value})
    message = str(raised.value)
    assert mentions in message
    assert "\n" not in message


def test_an_unwritable_data_dir_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError, match="not writable"):
        load_settings(environ={"HUBBUB_DATA_DIR": str(blocker / "sub")})


def test_describe_masks_secrets(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "HUBBUB_DATA_DIR": str(tmp_path),
            "HUBBUB_DATABASE_URL": "postgresql://app:hunter2@db/hubbub",
        }
    )
    shown = describe(settings)
    assert shown["jwt_secret"] == "***"
    assert "hunter2" not in str(shown)


def test_flags_win_for_every_setting_and_the_environment_over_defaults(tmp_path: Path) -> None:
    environ = {"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_MAX_CONNECTIONS_PER_USER": "3"}
    assert load_settings(environ=environ).max_connections_per_user == 3
    settings = load_settings({"max_connections_per_user": "4", "drain_timeout": "2.5"}, environ)
    assert (settings.max_connections_per_user, settings.drain_timeout) == (4, 2.5)


def test_a_bad_flag_is_named_as_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^--drain-timeout='soon': "):
        load_settings({"drain_timeout": "soon"}, {"HUBBUB_DATA_DIR": str(tmp_path)})


def test_redis_without_a_jwt_secret_refuses_to_start(tmp_path: Path) -> None:
    environ = {"HUBBUB_DATA_DIR": str(tmp_path), "HUBBUB_REDIS_URL": "redis://127.0.0.1:6379/0"}
    with pytest.raises(ConfigError) as raised:
        load_settings(environ=environ)
    message = str(raised.value)
    assert "set HUBBUB_JWT_SECRET to the same value on every node" in message
    assert "\n" not in message
    # Nothing was generated for the node to fall back on next time.
    assert not (tmp_path / "jwt-secret").exists()
    secret = "s" * 32
    assert load_settings(environ={**environ, "HUBBUB_JWT_SECRET": secret}).jwt_secret == secret


def test_every_setting_has_a_flag_and_the_flag_leaves_room_for_the_environment() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    names = [field.name for field in attrs.fields(Settings)]
    assert vars(parser.parse_args([])) == dict.fromkeys(names)
    parsed = parser.parse_args(["--max-connections-per-user", "7", "--drain-timeout", "1"])
    assert (parsed.max_connections_per_user, parsed.drain_timeout) == ("7", "1")
    assert "HUBBUB_DRAIN_TIMEOUT" in parser.format_help()


def _readme_configuration_rows() -> list[str]:
    section = README.read_text().split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `HUBBUB_")]


def test_the_readme_configuration_table_is_exactly_the_settings() -> None:
    expected = []
    for field in attrs.fields(Settings):
        about = spec(field)
        default = about.default_text if about.default_text is not None else f"`{about.default}`"
        expected.append(
            f"| `{env_var(field.name)}` | `{flag(field.name)}` | {default} | {about.help} |"
        )
    assert _readme_configuration_rows() == expected
