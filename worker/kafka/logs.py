"""librdkafka's own log lines, routed through Python logging (rendered like every other line).

Without a `logger` in its configuration, librdkafka prints `%4|<time>|<FAC>|...` lines to stderr
itself, in between the worker's JSON lines. With `"logger": LOGGER`, confluent-kafka hands each
line to this logger from poll/consume (an admin client: poll), on the thread that calls them.
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("librdkafka")
