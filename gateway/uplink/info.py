"""The gateway's description: what the retained ``P/info`` and the ``info`` request hold.

A central server reads it once per connect to learn what this gateway is: its versions, zones,
which antenna of which reader watches which zone, its sensors and outputs, and a digest of the
config it runs (the validated config, so a comment or a reordered key does not change it; a
reload that changes anything does).
"""

from __future__ import annotations

import hashlib
import platform
from typing import Final

from gateway import __version__
from gateway.config import Config

CONTRACT_VERSION: Final = 2  # docs/contract.md, "Versions"


def gateway_info(config: Config, kernels: str) -> dict[str, object]:
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()
    return {
        "store": config.site.store,
        "gateway": config.site.gateway,
        "versions": {
            "silentgate": __version__,
            "contract": CONTRACT_VERSION,
            "python": platform.python_version(),
        },
        "kernels": kernels,
        "zones": [zone.id for zone in config.all_zones()],
        "antennas": {
            reader.id: {str(antenna): zone for antenna, zone in reader.zones().items()}
            for reader in config.readers
        },
        "sensors": {sensor.id: sensor.zone for sensor in config.sensors},
        "outputs": {output.id: output.driver for output in config.outputs},
        "config_digest": f"sha256:{digest}",
    }
