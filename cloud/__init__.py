"""The crowdfix cloud service: ingest, tickets, dispatch, API and dashboard."""

__version__ = "0.1.0"
