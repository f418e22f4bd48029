/// Every area of the console. Add yours here (one line): the menu, the home page and the routes come
/// from this list.
public enum ConsoleAreas {
    static let all: [any ConsoleArea.Type] = [
        HomeArea.self,
        AccountsArea.self,
        MerchantsArea.self,
        EventsArea.self,
        QueueArea.self,
        ReportsArea.self,
    ]
}
