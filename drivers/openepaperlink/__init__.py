"""OpenEPaperLink access point HTTP API (electronic shelf labels): request builders, parsers."""

from drivers.openepaperlink.requests import (
    Box,
    Color,
    Element,
    HttpRequest,
    Line,
    TagCommand,
    Text,
    get_db,
    json_upload,
    normalize_mac,
    tag_cmd,
    template_json,
    text_lines,
)
from drivers.openepaperlink.responses import TagInfo, TagPage, parse_db, parse_upload

__all__ = [
    "Box",
    "Color",
    "Element",
    "HttpRequest",
    "Line",
    "TagCommand",
    "TagInfo",
    "TagPage",
    "Text",
    "get_db",
    "json_upload",
    "normalize_mac",
    "parse_db",
    "parse_upload",
    "tag_cmd",
    "template_json",
    "text_lines",
]
