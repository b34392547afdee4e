"""``python -m tessera_dev.demo``: the README's demo (see ``run``)."""

from tessera_dev.demo.run import main

raise SystemExit(main())
