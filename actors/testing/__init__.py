"""The one testing seam: named crash points and durable-write failure injection (inert unless a test arms them)."""
