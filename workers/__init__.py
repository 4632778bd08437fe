"""Workers: the queues (in-process or arq) and the jobs that fan events out and deliver them."""
