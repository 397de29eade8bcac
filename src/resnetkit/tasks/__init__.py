"""Tasks: what one kind of problem (classification today) adds to the task-free engine."""
