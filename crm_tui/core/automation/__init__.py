"""Automation: rules on stages, sub-states, statuses and records; a durable schedule of their actions.

- ``rules``: the rules themselves (validation, create/edit/disable/delete, saying what each edit changes).
- ``schedule``: events from the services (a deal entered a stage, a sub-state opened, a field changed) become
  pending jobs with a due time, each belonging to one stay (entry) of the record; leaving cancels them.
- ``engine``: fires due jobs exactly once (a job's claim, its action's effects and its log row commit together),
  with the late policy, conditions checked again, and chains stopped at a depth limit.
- ``actions``: what a job does (mail through the outbox, activities, repeat leads, deal copies, sub-states,
  assignment, PDF reports).
"""
