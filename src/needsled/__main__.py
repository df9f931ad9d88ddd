from needsled.cli import main

main()
