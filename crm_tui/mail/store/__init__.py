"""What the mail engine writes into the database without the core's services: the raw bytes of message bodies,
written by the sync's helper processes (``raw_writer``). The bulk statements the mail services use live in
``core.bulk``: the core's own services (mailbox, linking, threads) run them."""
