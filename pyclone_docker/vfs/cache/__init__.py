"""The VFS disk cache (`--vfs-cache-mode minimal|writes|full`), after rclone's vfs/vfscache.

- registry.py: Cache, one volume's items: lookup, rename, removal, crash recovery, eviction;
- item.py: CacheItem, one cached object: its data file, opens, reads, writes;
- states.py: its state machine as the VFS, the uploads and renames drive it;
- kernel.py: its side of FUSE passthrough (the kernel reads and writes its data file);
- downloaders.py: fetching its missing ranges, no lock held while the remote is read;
- writeback.py: the upload queue (--vfs-write-back, --transfers), no lock held while sending;
- owner.py: the typed interfaces item and write-back see of their Cache;
- fingerprint.py: what tells a cached copy from a changed remote object;
- files.py: the layout on disk, metadata files, directories;
- ranges.py: which bytes of a sparse data file are present.
"""

from .files import check_sparse
from .item import FETCH_BLOCK, CacheItem
from .kernel import KERNEL_WRITE_SENTINEL_NS
from .registry import Cache

__all__ = ["FETCH_BLOCK", "KERNEL_WRITE_SENTINEL_NS", "Cache", "CacheItem", "check_sparse"]
