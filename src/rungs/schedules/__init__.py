"""On-call schedules: who is on call at an instant, and their iCalendar export."""
