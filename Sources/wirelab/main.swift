import WirelabCommands

WirelabCommand.main()
