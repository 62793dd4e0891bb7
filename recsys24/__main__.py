from recsys24.cli import main

main()
