"""Channel policies: raw portal rows in, ``sales.order_lines`` rows out (pure pandas)."""
