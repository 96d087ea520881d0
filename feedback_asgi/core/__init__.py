"""The lowest layer, importing nothing else of the package: the records stored
(:mod:`.records`), :mod:`.result`, :mod:`.exceptions`, :mod:`.config`, feedback
:mod:`.tokens`, the :mod:`.error_counter` for our own failures, and the built-in
:mod:`.secret_rules` that redaction and the configuration check share."""
