"""The FUSE layer: libfuse mounts served by threads of this process (mount), the adapter from
libfuse's callbacks to the VFS (ops), kernel passthrough of cached files (passthrough) and the
libfuse worker threads' Python states (workers)."""
