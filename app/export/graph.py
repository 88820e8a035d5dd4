"""The crate being written: its entities, and the files made for it in a work folder."""

from __future__ import annotations

import json
import mimetypes
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The rocrate library ships no type information.
from rocrate.model.contextentity import ContextEntity  # type: ignore[import-untyped]
from rocrate.model.entity import Entity  # type: ignore[import-untyped]
from rocrate.rocrate import ROCrate  # type: ignore[import-untyped]

from gantry.export.parts import FORMATS, json_default, properties


@dataclass(slots=True)
class CrateGraph:
    crate: ROCrate
    #: a temporary folder for the files made for the crate (JSON, CSV, the script)
    work: Path
    #: the API of the server making the crate: the ``url`` of software with no home of its own
    api: str
    #: temporary files made elsewhere (NetCDF), removed with ``work``
    made: list[Path] = field(default_factory=list)

    def entity(
        self, identifier: str, props: dict[str, Any], values: Mapping[str, Any] | None = None
    ) -> Entity:
        """The contextual entity ``identifier``, made once; ``values`` its additionalProperty."""
        found = self.crate.get(identifier)
        if found is not None:
            return found
        if values:
            props["additionalProperty"] = self.values(identifier, values)
        return self.crate.add(ContextEntity(self.crate, identifier, properties=props))

    def values(self, owner: str, values: Mapping[str, Any]) -> list[Entity]:
        return [self.entity(v.pop("@id"), v) for v in properties(owner, values)]

    def file(self, source: Path, dest: str, props: dict[str, Any]) -> Entity:
        """A data entity: ``source`` is copied to ``dest`` in the zip when it is written."""
        fmt = FORMATS.get(Path(dest).suffix) or mimetypes.guess_type(dest)[0]
        props = {
            "name": Path(dest).name,
            "encodingFormat": fmt or "application/octet-stream",
            "contentSize": str(source.stat().st_size),
            **props,
        }
        return self.crate.add_file(source=source, dest_path=dest, properties=props)

    def temp(self, name: str) -> Path:
        fd, path = tempfile.mkstemp(prefix="part-", suffix=Path(name).suffix, dir=self.work)
        os.close(fd)
        return Path(path)

    def json_file(self, value: Any, dest: str, props: dict[str, Any]) -> Entity:
        path = self.temp(dest)
        path.write_text(json.dumps(value, indent=2, default=json_default) + "\n")
        return self.file(path, dest, props)
