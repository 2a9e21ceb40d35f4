CREATE TABLE clicks (
    event_type  text,
    "timestamp" bigint,
    user_id     text,
    page        text,
    event_time  timestamp,
    section     text
);
