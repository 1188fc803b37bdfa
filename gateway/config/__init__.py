"""The gateway's configuration: one TOML file, validated by pydantic models (one module per part
of the file), loaded by ``loader``."""

from gateway.config.devices import (
    Em4100Reader,
    ModbusScaleSensor,
    Pn532Reader,
    ReaderConfig,
    SensorConfig,
    ThingMagicReader,
)
from gateway.config.loader import LoadedConfig, load_config, parse_config, read_config
from gateway.config.mqtt import MqttConfig
from gateway.config.outputs import OutputConfig
from gateway.config.root import Config
from gateway.config.sections import (
    MetricsConfig,
    PresenceConfig,
    PrivacyConfig,
    SiteConfig,
    StorageConfig,
    TagsConfig,
    WebConfig,
    ZoneConfig,
)

__all__ = [
    "Config",
    "Em4100Reader",
    "LoadedConfig",
    "MetricsConfig",
    "ModbusScaleSensor",
    "MqttConfig",
    "OutputConfig",
    "Pn532Reader",
    "PresenceConfig",
    "PrivacyConfig",
    "ReaderConfig",
    "SensorConfig",
    "SiteConfig",
    "StorageConfig",
    "TagsConfig",
    "ThingMagicReader",
    "WebConfig",
    "ZoneConfig",
    "load_config",
    "parse_config",
    "read_config",
]
