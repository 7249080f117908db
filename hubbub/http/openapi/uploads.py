"""Image uploads and stored media (upload_routes.py)."""

from __future__ import annotations

from hubbub.http.openapi._parts import (
    ACCESS,
    PUBLIC,
    TEXT,
    errors,
    obj,
    ok,
    operation,
)
from hubbub.media import FORMATS

TAG = "uploads"

_TYPES = sorted({fmt.content_type for fmt in FORMATS})
_BYTES = {"schema": {"type": "string", "contentMediaType": "application/octet-stream"}}

SCHEMAS = {
    "Image": obj(
        {
            "filename": TEXT,
            "url": TEXT,
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "content_type": {"type": "string", "enum": _TYPES},
            "size": {"type": "integer", "minimum": 1},
        }
    ),
}

PATHS = {
    "/upload/image": {
        "post": operation(
            "upload_image",
            "Store an image (PNG, JPEG, GIF or WebP, judged by its content)",
            {
                **ok({"$ref": "#/components/schemas/Image"}, "The image was stored"),
                **errors(408, 413, 415),
            },
            tag=TAG,
            security=ACCESS,
            body={
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {
                                    "type": "string",
                                    "contentMediaType": "application/octet-stream",
                                }
                            },
                        }
                    }
                },
            },
            description="The body streams under HUBBUB_MAX_UPLOAD_BYTES (413 past it, or "
            "past HUBBUB_MAX_IMAGE_PIXELS); a file that is not a whole image of a supported "
            "format is 415; a body that is not multipart with a field `file` is 422.",
        )
    },
    "/media/{filename}": {
        "get": operation(
            "media",
            "A stored image's bytes (immutable: cache forever)",
            {
                "200": {
                    "description": "The image, with the Content-Type of its format",
                    "headers": {"ETag": {"schema": TEXT}},
                    "content": {content_type: _BYTES for content_type in _TYPES},
                },
                **errors(304, 404),
            },
            tag=TAG,
            security=PUBLIC,
            parameters=[
                {
                    "name": "filename",
                    "in": "path",
                    "required": True,
                    "description": "The filename an upload answered",
                    "schema": TEXT,
                }
            ],
        )
    },
}
