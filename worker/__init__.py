"""marketo-audience-worker: keeps Marketo Engage static lists equal to audiences, from Kafka."""

__version__ = "0.1.0"
