"""Prometheus metrics of a cloud process (one registry per process; /metrics serves it)."""

from __future__ import annotations

from functools import cache

from prometheus_client import Counter, Gauge, Histogram


class Metrics:
    """The counters, gauges and histograms crowdfix exports."""

    def __init__(self) -> None:
        self.messages = Counter(
            "crowdfix_messages_total", "Device messages received, by channel", ["channel"]
        )
        self.processed = Counter(
            "crowdfix_messages_processed_total",
            "Device messages stored (or quarantined) and acknowledged, by path",
            ["path"],
        )
        self.rejected = Counter(
            "crowdfix_messages_rejected_total",
            "Messages refused and quarantined, by reason",
            ["reason"],
        )
        self.duplicates = Counter(
            "crowdfix_messages_duplicate_total", "Redelivered events recognised by message id"
        )
        self.tickets_opened = Counter(
            "crowdfix_tickets_opened_total", "Tickets opened, by category", ["category"]
        )
        self.latency = Histogram(
            "crowdfix_ingest_seconds",
            "From receipt off the wire to commit, by path",
            ["path"],
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.queue_depth = Gauge(
            "crowdfix_ingest_queue_depth", "Messages waiting in the worker, by path", ["path"]
        )
        self.broker_dropped = Gauge(
            "crowdfix_broker_messages_dropped",
            "Messages Mosquitto dropped (queue limits), from $SYS/broker/publish/messages/dropped",
        )
        self.influx_failures = Counter(
            "crowdfix_influx_write_failures_total", "Telemetry batches InfluxDB refused"
        )
        self.webhook_posts = Counter(
            "crowdfix_webhook_posts_total",
            "Webhook notices (to technicians and the alert webhook), by result (delivered, "
            "failed: tried again later, waiting: behind a failed one to the same URL, given_up: "
            "out of date)",
            ["result"],
        )
        self.alerts = Counter(
            "crowdfix_alerts_total",
            "Operator alerts raised, by kind (escalated, onsite_warning, onsite_breached)",
            ["kind"],
        )
        self.alerts_cleared = Counter(
            "crowdfix_alerts_cleared_total",
            "Operator alerts cleared (the ticket reached, no longer escalated, or closed), by kind",
            ["kind"],
        )
        # The outbox and dispatch, read from the database when the API is scraped (the same
        # in every process).
        self.waiting = Gauge(
            "crowdfix_dispatch_waiting_tickets",
            "Open tickets no technician holds yet, by state (escalated: an operator must act)",
            ["state"],
        )
        self.pending_offers = Gauge(
            "crowdfix_dispatch_pending_offers", "Offers waiting for a technician's answer"
        )
        self.past_target = Gauge(
            "crowdfix_dispatch_open_past_onsite_target",
            "Open tickets whose on-site target passed with nobody there yet",
        )
        self.at_risk = Gauge(
            "crowdfix_dispatch_open_onsite_warning",
            "Open tickets nobody has reached yet whose on-site clock warns (most of the time gone)",
        )
        self.outbox = Gauge(
            "crowdfix_outbox_messages",
            "Messages not sent yet: waiting on MQTT (mqtt) or for a technician's webhook "
            "(webhook), and given up as out of date (given_up, kept a day)",
            ["lane"],
        )
        self.technicians = Gauge(
            "crowdfix_technicians",
            "Technicians by state: available (on shift, not paused), paused by policy, on_leave "
            "(time off), off (toggled off, or off shift), retired",
            ["state"],
        )
        self.certifications = Gauge(
            "crowdfix_certifications",
            "Certifications of technicians not retired: expiring within 30 days, or expired "
            "(no more jobs needing that skill until renewed)",
            ["state"],
        )


@cache
def metrics() -> Metrics:
    """The process's metrics (registered once in the default registry)."""
    return Metrics()
