"""The Kubernetes layer every resource kind shares: the reconcile spine (`spine`), the API client and login,
create-or-adopt of owned objects, the status writer, conditions, events, and how a batch/v1 Job's state is
read. Nothing here knows a kubetune kind; each kind's package passes its `apitypes.ResourceKind`."""
