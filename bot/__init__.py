"""The running application, one sub-package per job: adapter (Telegram), services (what
the adapter calls), cli (the ``consulta`` command) and infra (settings, logs, metrics)."""

import os

# PTB 22 warns that RetryAfter.retry_after will become a timedelta; opt in now (our code
# accepts both) so that flood-control answers are not turned into deprecation warnings.
os.environ.setdefault("PTB_TIMEDELTA", "true")
