"""Blob stores for payloads and logs: a local folder or S3."""

from core.blobs.base import BlobNotFound, BlobStore
from core.blobs.local import LocalBlobStore

__all__ = ["BlobNotFound", "BlobStore", "LocalBlobStore"]
