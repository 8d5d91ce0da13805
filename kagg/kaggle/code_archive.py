"""The modules beside the notebook, shipped inside the kernel as a base64 zip (no git, no token).

Kaggle's push sends only the notebook's text, so the ``helpers.py`` / ``utils/`` a notebook
imports travel in its first cell and are unpacked at start into a scratch folder on
``sys.path``. The zip is deterministic (sorted entries, fixed dates and modes) so the same
modules give the same kernel text. Above :data:`MAX_ARCHIVE_BYTES` a kernel's source gets
unwieldy (Kaggle's editor, the push's request size): ship the code as a dataset instead.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass

from kagg.errors import BadInput
from kagg.notebook.datafiles import format_size

MAX_ARCHIVE_BYTES = 2 * 1024 * 1024
_DATE = (1980, 1, 1, 0, 0, 0)
_LINE = 76  # base64 characters per line in the cell


@dataclass
class CodeArchive:
    files: list[str]
    sha256: str  # of the zip bytes (checked when unpacked)
    size: int  # zip bytes
    text: str  # base64, in lines of _LINE characters


def build_archive(files: dict[str, bytes], filename: str, limit: int = MAX_ARCHIVE_BYTES) -> CodeArchive:
    """Zip ``files`` (relative path -> bytes); BadInput with the size and what to do above ``limit``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_DATE)
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, files[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    data = buffer.getvalue() if files else b""
    if len(data) > limit:
        biggest = sorted(files, key=lambda n: -len(files[n]))[:3]
        raise BadInput(f"the modules beside {filename} come to {format_size(len(data))} zipped "
                       f"(largest: {', '.join(biggest)}), more than the {format_size(limit)} a kernel can carry; "
                       "upload them as a Kaggle dataset, attach it with --dataset OWNER/SLUG and add its folder "
                       "under /kaggle/input to sys.path, or move what is not code out of those folders")
    encoded = base64.b64encode(data).decode("ascii")
    text = "\n".join(encoded[i:i + _LINE] for i in range(0, len(encoded), _LINE))
    return CodeArchive(sorted(files), hashlib.sha256(data).hexdigest() if data else "", len(data), text)
