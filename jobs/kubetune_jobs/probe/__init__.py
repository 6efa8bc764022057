"""Live tool-call health: a small fixed set of call and no-call requests sent to a serving endpoint on an
interval, read as the endpoint's clients read the replies (`health`), and exported (`run`)."""
