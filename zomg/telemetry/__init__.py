"""zomg's CLI telemetry (see docs/telemetry.md)."""
