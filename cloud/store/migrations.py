"""The coordinator's schema: numbered migrations, applied in order, never edited once applied.

Append a new script to change the schema; :meth:`cloud.store.CloudStore.migrate` records each
applied number in ``schema_migrations``.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS"]

MIGRATIONS: tuple[str, ...] = (
    # 1: devices, the event log, positions, stop facts, routes and what vehicles report
    """
    CREATE TABLE devices (
        device_id TEXT PRIMARY KEY, role TEXT NOT NULL, status TEXT NOT NULL,
        status_at_ms INTEGER NOT NULL, last_seen_ms INTEGER NOT NULL);
    CREATE TABLE events (
        src TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL,
        lc INTEGER NOT NULL, ts INTEGER NOT NULL, payload BLOB NOT NULL,
        PRIMARY KEY (src, seq)) WITHOUT ROWID;
    CREATE INDEX events_kind ON events (kind);
    CREATE TABLE positions (
        vehicle_id TEXT PRIMARY KEY, at_ms INTEGER NOT NULL, lat REAL NOT NULL,
        lon REAL NOT NULL, speed_kmh REAL NOT NULL, heading_deg REAL NOT NULL,
        odometer_km REAL NOT NULL, fuel_pct REAL, charge_pct REAL, door_open INTEGER NOT NULL,
        ignition INTEGER NOT NULL, temperature_c REAL);
    CREATE TABLE stop_facts (
        stop_id TEXT PRIMARY KEY, vehicle_id TEXT NOT NULL, route_id TEXT NOT NULL,
        status TEXT NOT NULL, at_ms INTEGER NOT NULL, event_id TEXT NOT NULL,
        reason TEXT, recipient TEXT);
    CREATE TABLE routes (
        route_id TEXT NOT NULL, version INTEGER NOT NULL, vehicle_id TEXT NOT NULL,
        day TEXT NOT NULL, plan TEXT NOT NULL, created_ms INTEGER NOT NULL,
        PRIMARY KEY (route_id, version));
    CREATE TABLE sequences (
        vehicle_id TEXT NOT NULL, route_id TEXT NOT NULL, revision INTEGER NOT NULL,
        plan_version INTEGER NOT NULL, reason TEXT NOT NULL, stops TEXT NOT NULL,
        solver TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (vehicle_id, route_id, revision));
    CREATE TABLE exceptions (
        exception_id TEXT PRIMARY KEY, src TEXT NOT NULL, category TEXT NOT NULL,
        severity TEXT NOT NULL, at_ms INTEGER NOT NULL, detail TEXT NOT NULL, stop_id TEXT,
        parcel_id TEXT, vehicle_id TEXT, data TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open');
    CREATE TABLE scans (
        scan_id TEXT PRIMARY KEY, src TEXT NOT NULL, barcode TEXT NOT NULL, at_ms INTEGER NOT NULL,
        result TEXT NOT NULL, parcel_id TEXT, depot_id TEXT, vehicle_id TEXT, container TEXT,
        position INTEGER);
    """,
    # 2: the network (depots, fleets, vehicles), orders with stops and parcels, who serves
    #    what (assignments), decisions with their inputs, and the triggers waiting for one
    """
    CREATE TABLE depots (
        depot_id TEXT PRIMARY KEY, name TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL,
        address TEXT, created_ms INTEGER NOT NULL);
    CREATE TABLE fleets (
        fleet_id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('own', '3pl', 'gig')),
        depot_id TEXT NOT NULL REFERENCES depots (depot_id), terms TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'up', status_at_ms INTEGER NOT NULL);
    CREATE TABLE vehicles (
        vehicle_id TEXT PRIMARY KEY, fleet_id TEXT NOT NULL REFERENCES fleets (fleet_id),
        spec TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'active',
        status_at_ms INTEGER NOT NULL);
    CREATE TABLE orders (
        order_id TEXT PRIMARY KEY, depot_id TEXT NOT NULL REFERENCES depots (depot_id),
        day TEXT NOT NULL, body TEXT NOT NULL, body_sha TEXT NOT NULL, answer TEXT NOT NULL,
        status TEXT NOT NULL, reason TEXT, done_by TEXT, created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL);
    CREATE INDEX orders_region ON orders (day, depot_id, status);
    CREATE TABLE stops (
        stop_id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE REFERENCES orders (order_id),
        kind TEXT NOT NULL, lat REAL NOT NULL, lon REAL NOT NULL, address TEXT,
        window_start INTEGER, window_end INTEGER, service_s INTEGER NOT NULL,
        size INTEGER NOT NULL, skills TEXT NOT NULL, optional INTEGER NOT NULL,
        postponement_cost INTEGER NOT NULL, customer TEXT);
    CREATE TABLE parcels (
        parcel_id TEXT PRIMARY KEY, order_id TEXT NOT NULL REFERENCES orders (order_id),
        barcode TEXT NOT NULL UNIQUE, weight_kg REAL NOT NULL, volume_l REAL NOT NULL,
        cold_chain INTEGER NOT NULL);
    CREATE INDEX parcels_order ON parcels (order_id);
    CREATE TABLE assignments (
        order_id TEXT PRIMARY KEY REFERENCES orders (order_id), vehicle_id TEXT NOT NULL,
        kind TEXT NOT NULL, route_id TEXT, since_version INTEGER, position INTEGER NOT NULL,
        eta INTEGER, decision_id TEXT NOT NULL, at_ms INTEGER NOT NULL);
    CREATE INDEX assignments_vehicle ON assignments (vehicle_id, position);
    CREATE TABLE decisions (
        decision_id TEXT PRIMARY KEY, kind TEXT NOT NULL, rule TEXT NOT NULL,
        region TEXT, trigger TEXT NOT NULL, inputs TEXT NOT NULL, solver TEXT,
        params TEXT NOT NULL, seed INTEGER, output TEXT NOT NULL, output_sha TEXT NOT NULL,
        applied TEXT NOT NULL, approved_by TEXT NOT NULL, status TEXT NOT NULL,
        seconds REAL NOT NULL, at_ms INTEGER NOT NULL);
    CREATE INDEX decisions_kind ON decisions (kind, at_ms);
    CREATE TABLE triggers (
        trigger_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, depot_id TEXT NOT NULL,
        day TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL, at_ms INTEGER NOT NULL,
        decision_id TEXT);
    CREATE INDEX triggers_open ON triggers (decision_id, depot_id);
    """,
    # 3: operations: the exception queue (one item per group of repeats) and its incidents,
    #    customer-facing ETA windows and the notifications they caused, customer contacts,
    #    outgoing webhook targets, API tokens (digests only), and the outbox of work that
    #    leaves the coordinator after its transaction commits
    """
    CREATE TABLE exception_items (
        item_id TEXT PRIMARY KEY, cls TEXT NOT NULL, reason TEXT, scope_kind TEXT NOT NULL,
        scope_id TEXT NOT NULL, group_key TEXT NOT NULL, status TEXT NOT NULL
        CHECK (status IN ('open', 'auto_resolved', 'awaiting_approval', 'escalated',
                          'approved', 'rejected', 'overridden')),
        action TEXT NOT NULL, why TEXT NOT NULL, recommended TEXT NOT NULL,
        options TEXT NOT NULL, context TEXT NOT NULL, decision TEXT NOT NULL,
        count INTEGER NOT NULL, first_at_ms INTEGER NOT NULL, last_at_ms INTEGER NOT NULL,
        order_id TEXT, vehicle_id TEXT, carrier_id TEXT, predicted INTEGER NOT NULL,
        decision_id TEXT, decided_by TEXT, decided_why TEXT, chosen TEXT, decided_ms INTEGER,
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
    CREATE INDEX exception_items_key ON exception_items (group_key, last_at_ms);
    CREATE INDEX exception_items_status ON exception_items (status, first_at_ms);
    CREATE TABLE exception_incidents (
        incident_id TEXT PRIMARY KEY, item_id TEXT NOT NULL REFERENCES exception_items (item_id),
        cls TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, detail TEXT NOT NULL,
        at_ms INTEGER NOT NULL);
    CREATE INDEX exception_incidents_item ON exception_incidents (item_id);
    CREATE TABLE customer_windows (
        order_id TEXT PRIMARY KEY, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL,
        eta_ms INTEGER NOT NULL, width_min INTEGER NOT NULL, notified_ms INTEGER NOT NULL,
        shift_min REAL NOT NULL, operational_eta_ms INTEGER NOT NULL,
        operational_at_ms INTEGER NOT NULL, stops_away INTEGER, due TEXT);
    CREATE TABLE customer_contacts (
        customer_id TEXT PRIMARY KEY, email TEXT, phone TEXT, push_token TEXT,
        webhook_url TEXT, preferences TEXT NOT NULL, updated_ms INTEGER NOT NULL);
    CREATE TABLE notifications (
        notification_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, customer_id TEXT NOT NULL,
        kind TEXT NOT NULL, reason TEXT NOT NULL, subject TEXT NOT NULL, text TEXT NOT NULL,
        change TEXT NOT NULL, sent_window TEXT NOT NULL, status TEXT NOT NULL, channel TEXT,
        detail TEXT, created_ms INTEGER NOT NULL, sent_ms INTEGER);
    CREATE INDEX notifications_order ON notifications (order_id, created_ms);
    CREATE TABLE webhook_targets (
        target_id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL,
        events TEXT NOT NULL, carrier_id TEXT, created_by TEXT NOT NULL,
        created_ms INTEGER NOT NULL, active INTEGER NOT NULL DEFAULT 1);
    CREATE TABLE api_tokens (
        token_id TEXT PRIMARY KEY, name TEXT NOT NULL, roles TEXT NOT NULL, salt TEXT NOT NULL,
        digest TEXT NOT NULL, carrier_id TEXT, created_ms INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE ops_outbox (
        entry_id INTEGER PRIMARY KEY, kind TEXT NOT NULL, ref TEXT NOT NULL,
        payload TEXT NOT NULL, created_ms INTEGER NOT NULL, done_ms INTEGER);
    CREATE INDEX ops_outbox_open ON ops_outbox (done_ms, entry_id)
    """,
    # 4: what exception decisions carried out: one action per automatic resolution of an
    #    incident and per person's decision (its option, what it is about, its status, the
    #    triggers it waits on, its outcome); each incident's own subject (order, vehicle);
    #    the instructions ops staff must carry out themselves (tasks); and the stop facts a
    #    re-attempt set aside
    """
    ALTER TABLE exception_incidents ADD COLUMN subject TEXT;
    CREATE TABLE exception_actions (
        action_id TEXT PRIMARY KEY, item_id TEXT NOT NULL REFERENCES exception_items (item_id),
        incident_id TEXT, decision_id TEXT NOT NULL, option TEXT NOT NULL, label TEXT NOT NULL,
        by TEXT NOT NULL, subject TEXT NOT NULL, status TEXT NOT NULL
        CHECK (status IN ('queued', 'waiting', 'done', 'failed', 'skipped')),
        triggers TEXT NOT NULL DEFAULT '[]', outcome TEXT NOT NULL DEFAULT '{}',
        created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, done_ms INTEGER);
    CREATE INDEX exception_actions_item ON exception_actions (item_id, created_ms);
    CREATE INDEX exception_actions_status ON exception_actions (status, created_ms);
    CREATE TABLE ops_tasks (
        task_id TEXT PRIMARY KEY, action_id TEXT NOT NULL, item_id TEXT NOT NULL,
        option TEXT NOT NULL, text TEXT NOT NULL, vehicle_id TEXT, order_id TEXT,
        status TEXT NOT NULL CHECK (status IN ('open', 'done')), created_ms INTEGER NOT NULL,
        done_by TEXT, done_note TEXT, done_ms INTEGER);
    CREATE INDEX ops_tasks_open ON ops_tasks (status, created_ms);
    CREATE TABLE stop_fact_history (
        stop_id TEXT NOT NULL, vehicle_id TEXT NOT NULL, route_id TEXT NOT NULL,
        status TEXT NOT NULL, at_ms INTEGER NOT NULL, event_id TEXT NOT NULL PRIMARY KEY,
        reason TEXT, recipient TEXT, set_aside_by TEXT NOT NULL, set_aside_ms INTEGER NOT NULL)
    """,
    # 5: who may come in: dashboard users (scrypt hashes, never a password) and the device
    #    registry (each device's role and fleet, recorded when its broker login is made)
    """
    CREATE TABLE dashboard_users (
        name TEXT PRIMARY KEY, email TEXT UNIQUE, password_hash TEXT NOT NULL,
        roles TEXT NOT NULL, carrier_id TEXT, created_ms INTEGER NOT NULL,
        disabled INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE device_registry (
        device_id TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('vehicle', 'depot')),
        fleet_id TEXT, created_ms INTEGER NOT NULL)
    """,
    # 6: each depot's planning days: its IANA time zone and the local cut-off at which its
    #    morning plan runs (NULL: the coordinator's defaults), and the morning plans found by
    #    region, so a depot's day is planned once
    """
    ALTER TABLE depots ADD COLUMN timezone TEXT;
    ALTER TABLE depots ADD COLUMN cutoff TEXT;
    CREATE INDEX decisions_region ON decisions (region, kind)
    """,
    # 7: outgoing webhook deliveries, one per event and target, with their retries: the
    #    exact body that is signed and sent, how often it was tried, when it is next due,
    #    whether a worker has it in flight, and its last answer
    """
    CREATE TABLE webhook_deliveries (
        delivery_id TEXT PRIMARY KEY, event_id TEXT NOT NULL, event_type TEXT NOT NULL,
        target_id TEXT NOT NULL REFERENCES webhook_targets (target_id), body BLOB NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL,
        claimed_ms INTEGER, last_attempt_ms INTEGER, last_status_code INTEGER,
        last_error TEXT, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,
        delivered_ms INTEGER, UNIQUE (event_id, target_id));
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
    CREATE INDEX webhook_deliveries_target ON webhook_deliveries (target_id, created_ms)
    """,
    # 8: dashboard sessions kept server-side, so a logout ends a session for good (a cookie
    #    copied before is refused after), and the owner of each webhook target (the API
    #    token or user that registered it: only it lists, reads or removes the target)
    """
    CREATE TABLE dashboard_sessions (
        session_id TEXT PRIMARY KEY, user_name TEXT NOT NULL, created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL, ended_ms INTEGER);
    CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_ms);
    ALTER TABLE webhook_targets ADD COLUMN owner TEXT
    """,
)
