"""Tasks (任务): the lifecycle of a task and every move on it, who may make it and see it.

Owns the lifecycle table over the stored states, access (visibility, roles, recusal), the one
guarded write every move and extension goes through, outcomes and feedback, extensions (延期),
what the API and the pages show of a task, and the use cases the edges call.
"""
