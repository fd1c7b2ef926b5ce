"""Session fixtures shared by every test tier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes import ServeMarketo, marketo_servers
from tests.kafka_support import broker_from_environment


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Kafka broker for the whole session (see tests/kafka_support.py for its source)."""
    with broker_from_environment(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture
async def serve_marketo() -> AsyncIterator[ServeMarketo]:
    """A factory: `url = await serve_marketo(FakeMarketo())` serves the fake until the test ends."""
    async with marketo_servers() as serve:
        yield serve
