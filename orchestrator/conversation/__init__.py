"""The conversation layer: `vidchat.conversation.session.ChatSession` answers questions about
one video from its record, evidence first.

Modules, one job each: `session` (the ChatSession: state, asking, streaming), `prompt` (the
messages for one question within the token budget), `record_view` (what the record block holds:
full, compacted or retrieved windows), `reply` (the model's reply read as evidence and answer),
`evidence` (quotes checked against the record), `citations` (times and object ids an answer
cites), `answer` (the typed answer, evidence and turn), `transcript` (markdown).
"""
