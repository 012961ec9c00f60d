//! Mail: rendering, outbox delivery, transports.
