"""The whole config file. The checks that span sections and need to place their problems at
a line (unique ids, rules against outputs and zones) run in the loader, after this validates."""

from __future__ import annotations

from pydantic import Field, model_validator

from gateway.config.base import Model
from gateway.config.devices import ReaderConfig, SensorConfig
from gateway.config.mqtt import MqttConfig
from gateway.config.outputs import OutputConfig
from gateway.config.rules import RuleConfig
from gateway.config.sections import (
    CommandsConfig,
    MetricsConfig,
    PresenceConfig,
    PrivacyConfig,
    SiteConfig,
    StorageConfig,
    TagsConfig,
    WebConfig,
    ZoneConfig,
)


class Config(Model):
    site: SiteConfig
    mqtt: MqttConfig
    storage: StorageConfig = StorageConfig()
    privacy: PrivacyConfig = PrivacyConfig()
    tags: TagsConfig = TagsConfig()
    presence: PresenceConfig = PresenceConfig()
    readers: list[ReaderConfig] = Field(default_factory=list)
    sensors: list[SensorConfig] = Field(default_factory=list)
    zones: list[ZoneConfig] = Field(default_factory=list)
    outputs: list[OutputConfig] = Field(default_factory=list)
    rules: list[RuleConfig] = Field(default_factory=list)
    metrics: MetricsConfig = MetricsConfig()
    web: WebConfig = WebConfig()
    commands: CommandsConfig = CommandsConfig()

    @model_validator(mode="after")
    def _check_whole(self) -> Config:
        if not self.readers and not self.sensors:
            raise ValueError("at least one [[readers]] or [[sensors]] entry is required")
        return self

    def counts(self) -> str:
        """What ``check-config`` reports and ``run`` starts with, counted the same way:
        "4 devices, 3 outputs, 5 zones" (devices are readers and sensors), "1 device, ..."."""
        devices = len(self.readers) + len(self.sensors)
        counted = [
            (devices, "device"),
            (len(self.outputs), "output"),
            (len(self.all_zones()), "zone"),
        ]
        return ", ".join(f"{n} {noun}{'' if n == 1 else 's'}" for n, noun in counted)

    def all_zones(self) -> list[ZoneConfig]:
        """Declared zones, then zones named by devices but not declared, with defaults."""
        zones = list(self.zones)
        known = {z.id for z in zones}
        named = [z for r in self.readers for z in r.zones().values()]
        named += [s.zone for s in self.sensors]
        for zone in named:
            if zone not in known:
                known.add(zone)
                zones.append(ZoneConfig(id=zone))
        return zones

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"silentgate-{self.site.store}-{self.site.gateway}"
