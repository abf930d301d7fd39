"""The engine: chain planning, chunking, devices and per-file processing."""
