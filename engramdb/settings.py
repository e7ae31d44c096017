"""Edge configuration: ``ENGRAMDB_*`` variables over a TOML file, read once by the CLI and the
server and handed down as a ``MemoryConfig``.

A module of its own so that the library does not import pydantic-settings (70 ms of every
process's start) to open a ``Memory``: only the edges read the environment.
"""

from __future__ import annotations

import difflib
import importlib
import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from .config import Durability, LLMConfig, MemoryConfig, lower_choice
from .embedders import EmbedderOptions
from .errors import ConfigurationError


def default_config_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir("engramdb")) / "config.toml"


def config_file() -> Path:
    """The TOML file settings are read from: ``ENGRAMDB_CONFIG``, else the user config dir's."""
    return Path(os.environ.get("ENGRAMDB_CONFIG") or default_config_file())


class Settings(BaseSettings):
    """Edge configuration: ``ENGRAMDB_*`` variables over the TOML file (``ENGRAMDB_CONFIG``)."""

    model_config = SettingsConfigDict(env_prefix="ENGRAMDB_", extra="forbid")

    store: str | None = None
    embedder: str | None = None
    embedder_base_url: str | None = None
    embedder_api_key: SecretStr | None = None
    tenant_id: str = "default"
    max_text_chars: int = 32_000
    durability: Durability = Field("full", validation_alias=AliasChoices("durability", "synchronous"))
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    infer: bool = True

    @field_validator("durability", mode="before")
    @classmethod
    def _old_spelling(cls, value: Any) -> Any:
        return lower_choice(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file())

    def memory_config(self) -> MemoryConfig:
        return MemoryConfig(
            store=self.store,
            embedder=self.embedder,
            embedder_options=EmbedderOptions(base_url=self.embedder_base_url, api_key=self.embedder_api_key),
            tenant_id=self.tenant_id,
            max_text_chars=self.max_text_chars,
            durability=self.durability,
            llm=LLMConfig(model=self.llm_model, base_url=self.llm_base_url, api_key=self.llm_api_key)
            if self.llm_model
            else None,
            infer=self.infer,
        )


def load_settings(**overrides: Any) -> Settings:
    """``Settings`` from the arguments, the environment and the config file, with a fault in any
    of them (a TOML syntax error, a misspelt key, a value of the wrong type) raised as one
    ``ConfigurationError`` naming where it is, instead of a parser's or pydantic's report.
    """
    path = config_file()
    if path.exists() and not path.is_file():
        raise ConfigurationError(f"config file {path}: not a file")
    try:
        return Settings(**overrides)
    except PydanticValidationError as exc:
        raise ConfigurationError(_setting_fault(exc, path, overrides)) from None
    except _toml_errors() as exc:
        raise ConfigurationError(f"config file {path}: not valid TOML: {exc}") from None
    except OSError as exc:  # a directory, or not readable
        raise ConfigurationError(f"config file {path}: {exc.strerror or exc}") from None


def _setting_fault(exc: PydanticValidationError, path: Path, overrides: dict[str, Any]) -> str:
    first = exc.errors()[0]
    name = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":  # only the file can name a setting that does not exist
        close = difflib.get_close_matches(name, list(Settings.model_fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (settings: {', '.join(Settings.model_fields)})"
        return f"config file {path}: unknown setting {name!r}{hint}"
    variable = f"ENGRAMDB_{name.upper()}"
    where = variable if variable in os.environ else f"--{name}" if name in overrides else f"config file {path}"
    return f"{where}: {name}: {first['msg']}"


def _toml_errors() -> tuple[type[Exception], ...]:
    """TOML's syntax error: tomllib's (Python 3.11+) or, on 3.10, tomli's, which pydantic-settings uses there."""
    found = []
    for module in ("tomllib", "tomli"):
        try:
            found.append(importlib.import_module(module).TOMLDecodeError)
        except ModuleNotFoundError:
            continue
    return tuple(found)
