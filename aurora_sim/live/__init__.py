"""`aurora live`: drive a trace against a running server, learn from what it served, and swap
drafts into it (controller.live does the learning and deciding; this package the traffic, the
event log and the terminal view). `aurora capture` records a server's traffic as a trace."""
