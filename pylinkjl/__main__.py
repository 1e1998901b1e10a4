from pylinkjl.cli import main

main()
