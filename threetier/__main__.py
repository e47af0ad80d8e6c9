from threetier.cli import main

main()
