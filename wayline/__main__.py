import sys

from wayline.cli import main

sys.exit(main())
