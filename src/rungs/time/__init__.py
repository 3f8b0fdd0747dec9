"""Time: instants, durations, business hours and calendars, and the clock adapter."""
