"""The ``/feedback`` web app, framework-neutral (the adapters in ``integrations/`` and the
middleware serve it): :mod:`.endpoint` (the route table and ``respond()``), :mod:`.wire`
(bounded body reads, JSON replies and errors), :mod:`.submission` (the accepted body
shapes), :mod:`.access` (who may read: admin bearer, sign-in cookie, authorizer, the
submitter's token), :mod:`.rate_limit`, :mod:`.items` (read, edit, retract, stats),
:mod:`.export` (``POST {path}/export``) and :mod:`.assets` (widget and dashboard files)."""
