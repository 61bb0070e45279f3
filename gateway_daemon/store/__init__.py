"""Key-value stores: one interface (base.Store), backends chosen by config alone."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import (Entry, KeyExists, LeasesUnsupported, RevisionMismatch, Store, StoreError, StoreFull, StoreSpace,
                   StoreUnavailable, WatchEvent, namespace_for)

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "Entry", "KeyExists", "LeasesUnsupported", "RevisionMismatch", "Store", "StoreError", "StoreFull", "StoreSpace",
    "StoreUnavailable", "WatchEvent",
    "namespace_for", "open_store",
]


def open_store(config: "Config") -> Store:
    """The backend named by [store] backend, under the [application] cluster_id namespace."""
    namespace = namespace_for(config.cluster_id)
    backend = config.get("store", "backend")
    if backend == "memory":
        from .memory import MemoryStore

        return MemoryStore(namespace)
    if backend == "etcd":
        from .etcd import EtcdStore

        store = config["store"]
        return EtcdStore(
            namespace,
            hosts=list(store.etcd_hosts),
            use_tls=store.etcd_use_tls,
            ca_file=store.etcd_ca_certificate_file or config.get("application", "ca_certificate_file") or None,
            cert_file=store.etcd_certificate_file if store.etcd_client_cert_auth else None,
            key_file=store.etcd_private_key_file if store.etcd_client_cert_auth else None,
            quota=store.etcd_quota_bytes,
        )
    from .sqlite import SQLiteStore

    return SQLiteStore(namespace, config.data_dir / "gateway.db")
