from aurora_sim.cli import main

main()
