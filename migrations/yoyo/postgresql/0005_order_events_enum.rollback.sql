DROP TABLE order_events;

DROP TYPE order_event_kind;
