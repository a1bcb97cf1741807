"""The Telegram adapter and the running application: handlers, delivery, polling, CLI."""

import os

# PTB 22 warns that RetryAfter.retry_after will become a timedelta; opt in now (our code
# accepts both) so that flood-control answers are not turned into deprecation warnings.
os.environ.setdefault("PTB_TIMEDELTA", "true")
